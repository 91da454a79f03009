"""marsad: watch Arabic news feeds and alert when a monitored town shows up with a new claim."""

from pathlib import Path

__version__ = "0.1.0"

# The checkout the package runs from (installed with `pip install -e .`): seeds/ lives here.
REPO_ROOT = Path(__file__).resolve().parent.parent
