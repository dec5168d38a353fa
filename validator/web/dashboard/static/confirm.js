// A confirmation step inside the page (a modal <dialog>), for actions that change who
// may travel: blocking and unblocking. Not window.confirm(), which stops the page's
// live stream and every script behind a browser-drawn box.

import { h } from "./render.js";

const $ = (id) => document.getElementById(id);

/** Ask; resolves true on Confirm, false on Cancel or Escape. */
export function confirmStep(zh, en) {
  const dialog = $("confirm");
  $("confirm-text").replaceChildren(zh, h("br"), h("span", { class: "en" }, en));
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-ok").removeEventListener("click", yes);
      $("confirm-cancel").removeEventListener("click", no);
      dialog.removeEventListener("close", no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    $("confirm-ok").addEventListener("click", yes);
    $("confirm-cancel").addEventListener("click", no);
    dialog.addEventListener("close", no); // Escape closes a modal dialog
    dialog.showModal();
    $("confirm-cancel").focus(); // the safe answer is the default one
  });
}
