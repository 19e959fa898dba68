//! (being written)

use crate::context::Ctx;

pub(crate) fn check(_cx: &mut Ctx) {}
