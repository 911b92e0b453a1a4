//! The frame manager's C functions (filled in by the frames work).
