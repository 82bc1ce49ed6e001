// Progressive enhancement only: every action works without this file.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-select-all]")) {
    button.addEventListener("click", () => {
      const boxes = document.querySelectorAll('input[name="ids"][form="bulk"]');
      const all = Array.from(boxes).every((b) => b.checked);
      for (const box of boxes) box.checked = !all;
    });
  }
  for (const form of document.querySelectorAll("form[data-progress]")) {
    form.addEventListener("submit", (event) => {
      // Upload with a progress bar, then show the server's report page in place of this one.
      event.preventDefault();
      const bar = form.querySelector("progress");
      bar.hidden = false;
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      request.addEventListener("load", () => {
        const doc = new DOMParser().parseFromString(request.responseText, "text/html");
        document.querySelector("main").replaceWith(document.adoptNode(doc.querySelector("main")));
      });
      request.send(new FormData(form));
    });
  }
});
