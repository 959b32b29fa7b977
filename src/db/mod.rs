//! Storage: the one place that knows SQL, Diesel and the two backends.
