"""Version of the katcp-python API that katcp_compat provides."""

import protocompat

#: ``(major, minor, micro, releaselevel, serial)`` of the katcp API provided.
VERSION = (0, 9, 3, "final", 0)
#: Version string in katcp's ``katcp-python-x.y.z`` form.
VERSION_STR = "katcp-python-%d.%d.%d" % VERSION[:3]
#: The version reported on the wire (``#version-connect katcp-library``).
LIBRARY_VERSION = "%d.%d.%d" % VERSION[:3]
#: The build after it on that line: this implementation and its release.
LIBRARY_BUILD = "protocompat-%s" % protocompat.__version__
__version__ = LIBRARY_VERSION
