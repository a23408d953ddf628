//! Delivery of notifications and events to webhook destinations (in progress).
