//! HTTP/1.1 client: request formatting and response parsing (work in progress).
