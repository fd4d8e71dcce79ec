"""The API layer: decoding, defaulting, validation, patches, versions and watches over a kind-agnostic store."""
