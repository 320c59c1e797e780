# The worker image for Dataflow (--sdk_container_image) and Dask workers: Beam's Python SDK image,
# whose Python and Beam the driver must match, plus what scripts/install.sh --worker installs.
FROM apache/beam_python3.11_sdk:2.77.0
COPY . /opt/kpdata
RUN /opt/kpdata/scripts/install.sh --worker
