// Injected first into the <head> of a copy of report.html, before any of the page's own scripts: every JavaScript
// error (uncaught, in a promise, or written with console.error) and every resource that fails to load is kept in
// window.probeErrors, which report_probe.js reports.
window.probeErrors = [];
window.addEventListener("error", function (event) {
  const where = event.target && event.target !== window ? ` (${event.target.tagName} ${event.target.src || event.target.href})` : "";
  window.probeErrors.push(`error: ${event.message || "a resource failed to load"}${where}`);
}, true);
window.addEventListener("unhandledrejection", function (event) {
  window.probeErrors.push(`unhandled rejection: ${event.reason && event.reason.stack || event.reason}`);
});
const consoleError = console.error;
console.error = function (...args) {
  window.probeErrors.push(`console.error: ${args.map(String).join(" ")}`);
  return consoleError.apply(console, args);
};
