// Never returns: must be interrupted at the deadline.
function handler() {
  while (true) {}
}
