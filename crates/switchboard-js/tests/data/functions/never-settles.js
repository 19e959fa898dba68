// A promise nothing can ever resolve.
async function handler() {
  return new Promise(() => {});
}
