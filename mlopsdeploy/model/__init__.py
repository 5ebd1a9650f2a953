"""The offline sentiment model as a versioned artifact: build, evaluate, verify, fetch.

Heavy libraries (torch, transformers) are imported only by the commands that need them, so
`verify` stays cheap enough for a deploy to run on every host.
"""

from mlopsdeploy.model.manifest import MANIFEST_NAME, read_manifest, verify

__all__ = ["MANIFEST_NAME", "read_manifest", "verify"]
