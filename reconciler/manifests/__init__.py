"""Reading manifests: discovery, YAML with a source map, JSON Schema validation, semantic checks."""
