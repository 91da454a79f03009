FROM python:3.11-slim
WORKDIR /app
# The CPU build of torch first: camel-tools would otherwise pull a multi-GB CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY marsad marsad
COPY ingest ingest
COPY processors processors
COPY sinks sinks
COPY seeds seeds
RUN pip install --no-cache-dir -e .
EXPOSE 9108
ENTRYPOINT ["marsad"]
CMD ["run", "--config", "/etc/marsad/marsad.toml"]
