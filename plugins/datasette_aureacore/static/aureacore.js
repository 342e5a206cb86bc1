/* aureacore plugin pages: behaviour driven by data- attributes (no inline script).
   A form with data-confirm asks that question before it is submitted. */
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
