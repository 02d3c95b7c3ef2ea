"""protocompat: katcp, SAMP, clever-show messaging and socket_protocol, threaded and drop-in."""
from setuptools import setup

TEST_REQUIRES = [
    "pytest>=7",
    "pytest-timeout>=2",
    "hypothesis>=6",
    "astropy>=5",
    "pyvo>=1.4",
    "katcp==0.9.3",
]

setup(
    name="protocompat",
    version="0.1.0",
    description=(
        "Threaded, drop-in re-implementations of katcp-python, astropy.samp/pyvo.samp, "
        "clever-show's lib.messaging and socket_protocol"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.9",
    packages=["protocompat", "protocompat.messaging", "katcp_compat", "samp_compat", "sockproto"],
    install_requires=["defusedxml>=0.7"],
    extras_require={
        "tables": ["astropy>=5"],
        "test": TEST_REQUIRES,
        "docs": ["sphinx>=5"],
    },
    entry_points={
        "console_scripts": [
            "samp-compat-hub = samp_compat.hub_script:hub_script",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: System :: Networking",
    ],
)
