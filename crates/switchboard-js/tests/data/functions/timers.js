// setTimeout runs on a virtual clock: callbacks fire in due order once nothing else is left.
async function handler() {
  const order = [];
  await new Promise((resolve) => {
    setTimeout(() => order.push("late"), 5000);
    setTimeout(() => order.push("early"), 10);
    const cancelled = setTimeout(() => order.push("cancelled"), 20);
    clearTimeout(cancelled);
    setTimeout(resolve, 6000);
  });
  return { vars: { order } };
}
