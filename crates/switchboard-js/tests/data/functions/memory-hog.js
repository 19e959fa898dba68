// Allocates until the memory limit.
function handler() {
  let a = [];
  while (true) a.push(new Array(1e6).fill(1));
}
