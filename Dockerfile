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
# camel-tools data packages to bake into the image, space-separated (e.g. "ner-arabert" for
# [ner] backend = "camel"); empty by default because the CRF backend needs none and the
# AraBERT model adds several hundred MB. Build with `--build-arg CAMEL_DATA=ner-arabert`.
ARG CAMEL_DATA=""
ENV CAMELTOOLS_DATA=/opt/camel_tools
RUN for package in $CAMEL_DATA; do camel_data -i "$package" || exit 1; done
EXPOSE 9108
ENTRYPOINT ["marsad"]
CMD ["run", "--config", "/etc/marsad/marsad.toml"]
