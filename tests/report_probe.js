// Injected into a copy of report.html: click through every category and subcategory of the rendered report like
// a reader would, open every result, and write what was listed and shown as JSON into a hidden "probe-result" element.
window.addEventListener("load", async function () {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const out = { categories: {}, errors: [], resources: [] };
  const menuItems = () => Array.from(document.querySelectorAll("nav div.p-3 ul li a"));
  const itemText = (a) => a.textContent.trim();
  const crumb = (text) => Array.from(document.querySelectorAll("nav ol li a")).find((a) => itemText(a) === text);
  const shown = () => {
    const img = document.querySelector("img[src^='data:image']:not(nav img)");
    const frame = document.querySelector("iframe");
    return img ? "image" : frame ? "html" : "none";
  };
  async function readResults(where) {
    const rows = Array.from(document.querySelectorAll("nav table tbody tr"));
    const entries = [];
    for (let i = 0; i < rows.length; i++) {
      const row = document.querySelectorAll("nav table tbody tr")[i];
      const cells = Array.from(row.querySelectorAll("td")).map((td) => td.textContent.trim()).filter((t) => t);
      const view = row.querySelector("td:last-child a");
      let content = "none";
      if (view) {
        view.click();
        await sleep(300);
        content = shown();
      }
      entries.push({ labels: cells, content: content });
    }
    out.categories[where.category] = out.categories[where.category] || {};
    out.categories[where.category][where.subcategory || ""] = entries;
  }
  try {
    await sleep(500);
    const fixed = ["Workflow", "Statistics", "About"];
    const categories = menuItems().map(itemText).filter((t) => t && !fixed.includes(t));
    for (const category of categories) {
      menuItems().find((a) => itemText(a) === category).click();
      await sleep(300);
      if (document.querySelector("nav table")) {
        await readResults({ category: category });
      } else {
        const subcategories = menuItems().map(itemText);
        for (const subcategory of subcategories) {
          menuItems().find((a) => itemText(a) === subcategory).click();
          await sleep(300);
          await readResults({ category: category, subcategory: subcategory });
          crumb(category).click();
          await sleep(300);
        }
      }
      crumb("Results").click();
      await sleep(300);
    }
    // Leave the page on the first category's first result, for the screenshot.
    if (categories.length) {
      menuItems().find((a) => itemText(a) === categories[0]).click();
      await sleep(300);
      const first = document.querySelector("nav table tbody tr td:last-child a");
      if (first) { first.click(); await sleep(500); }
    }
  } catch (error) {
    out.errors.push(String(error && error.stack || error));
  }
  out.errors.push(...(window.probeErrors || ["report_errors.js was not injected"]));
  out.resources = performance.getEntriesByType("resource").map((r) => r.name).filter((n) => !n.startsWith("data:"));
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.style.display = "none";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
