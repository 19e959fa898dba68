//! (being written)

use crate::context::Ctx;

pub(crate) fn check(_cx: &mut Ctx, _a: &crate::templates::Analysis) {}
