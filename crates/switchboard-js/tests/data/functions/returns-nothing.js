// Forgets to return.
async function handler() {}
