//! eventide
