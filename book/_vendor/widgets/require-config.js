// Resolve the widget bundle's modules, and so the fonts its styles load, beside this file rather than beside
// the page: embed-amd.js finds its fonts relative to its modules' RequireJS addresses.
(function () {
  var here = document.currentScript.src.split("?")[0];
  require.config({ baseUrl: here.slice(0, here.lastIndexOf("/") + 1) });
})();
