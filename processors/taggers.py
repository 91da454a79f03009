"""Named-entity taggers behind one small interface, chosen by ``[ner] backend``:

- ``crf`` (default): the project's CRF trained on ANERcorp (processors/ner.py), offline.
- ``camel``: camel-tools' AraBERT NERecognizer, when its data is installed
  (``camel_data -i ner-arabert``, or a model in ``$CAMELTOOLS_DATA/data/ner/arabert``).
- ``none``: no tagger; places and actors come from the gazetteer and the lexicon alone.
"""

from __future__ import annotations

from typing import Protocol

BACKENDS = ("crf", "camel", "none")


class Tagger(Protocol):
    def tag(self, tokens: list[str]) -> list[str]: ...

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]: ...


class TaggerUnavailable(RuntimeError):
    """The configured backend cannot run here; the message says how to make it work."""


class CamelTagger:
    def __init__(self, recognizer: object):
        self._recognizer = recognizer

    @classmethod
    def load(cls) -> CamelTagger:
        # camel_tools.ner fetches a catalogue from the internet when it is imported without
        # local data, so it is imported here, only when this backend is chosen.
        try:
            from camel_tools.ner import NERecognizer

            return cls(NERecognizer.pretrained(use_gpu=False))
        except Exception as exc:  # DownloaderError, missing files, bad model: all mean "not installed"
            raise TaggerUnavailable(
                "ner.backend = 'camel' needs camel-tools' NER data (run `camel_data -i ner-arabert` "
                f"with network access, or set CAMELTOOLS_DATA to a folder that has it): {exc}"
            ) from exc

    def tag(self, tokens: list[str]) -> list[str]:
        return self._recognizer.predict_sentence(tokens) if tokens else []  # type: ignore[attr-defined]

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        return self._recognizer.predict(sentences) if sentences else []  # type: ignore[attr-defined]


def load_tagger(backend: str) -> Tagger | None:
    if backend == "none":
        return None
    if backend == "camel":
        return CamelTagger.load()
    from processors.ner import CrfTagger, ModelMissing

    try:
        return CrfTagger.load()
    except ModelMissing as exc:
        raise TaggerUnavailable(str(exc)) from exc
