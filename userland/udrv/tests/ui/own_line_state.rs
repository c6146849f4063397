//! Rule: the line states are sealed: no fourth state to launder a line through.
use udrv::LineState;

struct Fresh;

impl LineState for Fresh {}

fn main() {}
