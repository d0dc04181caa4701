//! The HTTP/1.1 response reader: not written yet.
