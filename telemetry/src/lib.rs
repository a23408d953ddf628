//! Observability shared by every service: trace export over OTLP
//! ([`export`]), W3C trace context through HTTP and Kafka headers
//! ([`propagation`]), and log lines that carry trace ids ([`logs`]).

pub mod export;
pub mod logs;
pub mod propagation;
