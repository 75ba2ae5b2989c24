/* The Jupyter widgets HTML manager typesets widget labels with MathJax 2's API,
 * MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book serves MathJax 3, which has no Hub.
 * This gives MathJax 3 the one call the manager makes. Loaded on pages that hold widget state. */
(function () {
  "use strict";
  function typeset(element) {
    var mj = window.MathJax;
    var run = function () { return window.MathJax.typesetPromise(element ? [element] : undefined); };
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready.then(run).catch(function (err) { console.warn("MathJax could not typeset a widget:", err); });
  }
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.version) return;
    mj.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset") typeset(job[2]);
        });
      }
    };
  }
  document.addEventListener("DOMContentLoaded", install);
})();
