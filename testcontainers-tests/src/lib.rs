//! testcontainers-tests
