//! (being written)

use crate::context::Ctx;

pub(crate) struct Analysis;

pub(crate) fn check(_cx: &mut Ctx) -> Analysis {
    Analysis
}
