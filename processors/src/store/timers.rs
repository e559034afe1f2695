//! Follow-up executions waiting for their time.
