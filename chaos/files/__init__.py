"""Reading the files users write: YAML that remembers lines, typed field readers, durations."""
