//! HyperFL (placeholder)
