//! The text form of a graph: print and parse back. (To be written.)
