//! Observability shared by every service: trace export over OTLP
//! ([`export`]), W3C trace context through HTTP and Kafka headers
//! ([`propagation`]), log lines that carry trace ids ([`logs`]), and the
//! build and process metrics every process reports ([`process`]).

pub mod export;
pub mod logs;
pub mod process;
pub mod propagation;
