// The web page in a real browser: `ckpt view` serves real checkpoints on an ephemeral loopback
// port, Debian's chromium (headless) opens the page, runs its scripts and requests, and the test
// reads the DOM they left: tensor names listed, a histogram drawn for the tensor the URL selects,
// a diff table with the changed tensors highlighted, the metrics plot of a training folder, a
// name made of HTML markup shown as text. Screenshots go under the build folder.
#include "test_ui_support.hpp"

#include <regex>

using namespace ckpt_ui_test;

namespace {

const fs::path kShots = fs::path(CKPT_UI_SCREENSHOTS);

// A real training run of `ckpt train` (3 epochs of a small MLP on 512 Fashion-MNIST images),
// made once per test program: its folder holds a checkpoint per epoch with the trainer's metrics.
const fs::path& training_folder() {
  static ckpt_test::TempDir dir("ui-train");
  static fs::path folder = [] {
    {
      std::ofstream cfg(dir / "mlp.json");
      cfg << R"({"model": {"type": "mlp", "hidden": [16]}, "optimizer": {"type": "sgd", "lr": 0.05},
        "epochs": 3, "batch_size": 64, "seed": 3, "threads": 1, "data": {"train_limit": 512, "test_limit": 128},
        "checkpoint": {"backend": "msgpack", "dir": "run", "resume": "none", "keep_last": 0}})";
    }
    std::string out;
    if (ckpt_test::run("cd '" + dir.path.string() + "' && " + CKPT_CLI + " train mlp.json", out) != 0)
      throw std::runtime_error("ckpt train failed: " + out);
    return dir / "run";
  }();
  return folder;
}

std::vector<fs::path> checkpoints_in(const fs::path& folder) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().filename().string().rfind("step-", 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The page's console: chromium logs each message with the source of the page.
std::vector<std::string> console_problems(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (line.find("CONSOLE") != std::string::npos || line.find("Content Security Policy") != std::string::npos ||
        line.find("Refused to") != std::string::npos || line.find("Uncaught") != std::string::npos)
      out.push_back(line);
  return out;
}

// Browses `fragment` of the page `view` serves and checks the scripts finished.
std::string dom_of(ViewProcess& view, const std::string& fragment, const ckpt_test::TempDir& dir) {
  EXPECT_FALSE(view.url().empty()) << "ckpt view printed no URL: " << view.output();
  EXPECT_NE(view.url().find("http://127.0.0.1:"), std::string::npos) << view.url();
  BrowserRun b = browse(view.url() + fragment, dir.path);
  EXPECT_EQ(b.status, 0) << b.log;
  EXPECT_NE(b.dom.find("data-state=\"ready\""), std::string::npos) << "the page's scripts did not finish:\n" << b.dom;
  EXPECT_EQ(b.dom.find("class=\"error\" hidden"), b.dom.find("class=\"error\"")) << "the page shows an error:\n" << b.dom;
  EXPECT_TRUE(console_problems(b.log).empty()) << b.log;
  return b.dom;
}

TEST(UiBrowser, TreeListsTensorsAndTheUrlSelectsATensorWhoseHistogramIsDrawn) {
  ckpt_test::TempDir dir("ui-browser-tree");
  const auto files = checkpoints_in(training_folder());
  ASSERT_EQ(files.size(), 3u);
  ViewProcess view({files.back().string()});
  const std::string dom = dom_of(view, "#tensor=model/state/fc1.weight", dir);
  for (const char* name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"})
    EXPECT_NE(dom.find(">" + std::string(name) + "</a>"), std::string::npos) << name << "\n" << dom;
  // The tensor's row is selected and its statistics shown, the histogram drawn with 64 bars.
  EXPECT_NE(dom.find("class=\"tensor selected\" data-path=\"model/state/fc1.weight\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-drawn=\"true\""), std::string::npos) << dom;
  EXPECT_EQ(count_of(dom, "class=\"bar\""), 64u) << dom;
  EXPECT_NE(dom.find("data-stat=\"mean\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("ckpt.checkpoint v1"), std::string::npos) << dom;  // the schema panel
  EXPECT_NE(dom.find("4 tensors recorded"), std::string::npos) << dom;  // the hashes of model/state

  // The hash check, as its button runs it, through the URL.
  const std::string checked = dom_of(view, "#verify=1", dir);
  EXPECT_NE(checked.find("4 tensors, 49.7 KiB match their hashes"), std::string::npos) << checked;

  BrowserRun shot = browse(view.url() + "#tensor=model/state/fc1.weight", dir.path, kShots / "ui-tree.png");
  EXPECT_EQ(shot.status, 0) << shot.log;
  ASSERT_TRUE(fs::exists(kShots / "ui-tree.png")) << shot.log;
  std::ifstream png(kShots / "ui-tree.png", std::ios::binary);
  char magic[8] = {};
  png.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_EQ(view.stop(), 0) << "ckpt view should exit 0 on SIGTERM";
}

TEST(UiBrowser, HostileTensorNameIsShownAsTextAndRunsNothing) {
  ckpt_test::TempDir dir("ui-browser-hostile");
  python(CKPT_UI_TEST_DIR "/test_ui_torch_file.py", {(dir / "state.pt").string(), (dir / "expected.json").string()});
  ViewProcess view({(dir / "state.pt").string()});
  const std::string dom = dom_of(view, "", dir);
  // As text: escaped in the serialized DOM, and no element made of it.
  EXPECT_NE(dom.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos) << dom;
  EXPECT_EQ(dom.find("<img"), std::string::npos) << dom;
  EXPECT_NE(dom.find(">fc1.weight</a>"), std::string::npos) << dom;
  // Selecting it through the URL (encoded as the page encodes it) shows its statistics.
  const std::string selected = dom_of(view, "#tensor=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E", dir);
  EXPECT_NE(selected.find("data-drawn=\"true\""), std::string::npos) << selected;
  EXPECT_EQ(selected.find("<img"), std::string::npos) << selected;
}

TEST(UiBrowser, DiffOfTwoCheckpointsHighlightsTheChangedTensors) {
  ckpt_test::TempDir dir("ui-browser-diff");
  const auto files = checkpoints_in(training_folder());
  ASSERT_EQ(files.size(), 3u);
  ViewProcess view({files.front().string(), files.back().string()});
  const std::string dom = dom_of(view, "#view=diff", dir);
  // Every weight changed between epoch 1 and 3: each row is highlighted and names its change.
  std::regex row("<tr class=\"differs\" data-path=\"model/state/(fc[12]\\.(weight|bias))\">");
  size_t differing = std::distance(std::sregex_iterator(dom.begin(), dom.end(), row), std::sregex_iterator());
  EXPECT_EQ(differing, 4u) << dom;
  EXPECT_NE(dom.find("values differ"), std::string::npos) << dom;
  EXPECT_NE(dom.find("tensors differ"), std::string::npos) << dom;

  BrowserRun shot = browse(view.url() + "#view=diff", dir.path, kShots / "ui-diff.png");
  EXPECT_EQ(shot.status, 0) << shot.log;
  EXPECT_TRUE(fs::exists(kShots / "ui-diff.png"));
}

TEST(UiBrowser, TrainingFolderPlotsItsMetrics) {
  ckpt_test::TempDir dir("ui-browser-metrics");
  ViewProcess view({training_folder().string()});
  const std::string dom = dom_of(view, "#view=metrics", dir);
  for (const char* series : {"train_loss", "test_loss", "train_accuracy", "test_accuracy"})
    EXPECT_NE(dom.find("data-series=\"" + std::string(series) + "\""), std::string::npos) << series << "\n" << dom;
  // Three epochs: three points on each of the four lines.
  EXPECT_EQ(count_of(dom, "class=\"point\""), 12u) << dom;
  EXPECT_NE(dom.find("3 checkpoints in"), std::string::npos) << dom;
  // And any two of its checkpoints compare: the last two by default.
  const std::string diff = dom_of(view, "#view=diff", dir);
  EXPECT_NE(diff.find("step-000000016.msgpack → "), std::string::npos) << diff;

  BrowserRun shot = browse(view.url() + "#view=metrics", dir.path, kShots / "ui-metrics.png");
  EXPECT_EQ(shot.status, 0) << shot.log;
  EXPECT_TRUE(fs::exists(kShots / "ui-metrics.png"));
}

TEST(UiBrowser, ConsoleHasNoErrorsOnAnyView) {
  ckpt_test::TempDir dir("ui-browser-console");
  ViewProcess view({training_folder().string()});
  for (const char* fragment : {"", "#tensor=model/state/fc2.bias", "#view=diff", "#view=metrics"}) {
    BrowserRun b = browse(view.url() + fragment, dir.path);
    EXPECT_EQ(b.status, 0) << b.log;
    EXPECT_TRUE(console_problems(b.log).empty()) << fragment << ":\n" << b.log;
    EXPECT_NE(b.dom.find("data-state=\"ready\""), std::string::npos) << b.dom;
  }
  // The check sees console errors at all: the page logs an error of the API it shows.
  BrowserRun bad = browse(view.url() + "#view=tree&ckpt=no-such-checkpoint", dir.path);
  EXPECT_NE(bad.dom.find("no checkpoint named"), std::string::npos) << bad.dom;
  EXPECT_FALSE(console_problems(bad.log).empty()) << bad.log;
}

// A wait inside the page for a condition, bounded (a guard against a hang, not a timed check).
const char* kWaitFor = R"(
  const waitFor = async (f) => {
    for (let i = 0; i < 600; i++) {
      if (f()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the page never reached: ' + f);
  };
)";

TEST(UiBrowser, ClickingATensorAndComparingThroughTheForm) {
  ckpt_test::TempDir dir("ui-browser-click");
  ViewProcess view({training_folder().string()});
  ASSERT_FALSE(view.url().empty()) << view.output();
  DevTools page(view.url(), dir.path);
  // A click on a tensor's name shows its statistics and histogram.
  json clicked = page.evaluate(std::string("(async () => {") + kWaitFor + R"(
    await waitFor(() => document.body.dataset.state === 'ready');
    const link = [...document.querySelectorAll('a.tensor-link')].find((a) => a.textContent === 'fc2.weight');
    link.click();
    await waitFor(() => document.getElementById('histogram').getAttribute('data-drawn') === 'true' &&
                        document.getElementById('stats-title').textContent === 'model/state/fc2.weight');
    return { url: location.hash, bars: document.querySelectorAll('#histogram rect.bar').length,
             values: document.querySelector('[data-stat="values"]').textContent,
             selected: document.querySelector('li.tensor.selected').dataset.path };
  })())");
  EXPECT_EQ(clicked["bars"], 64) << clicked.dump();
  EXPECT_EQ(clicked["values"], "160") << clicked.dump();  // [10, 16]
  EXPECT_EQ(clicked["selected"], "model/state/fc2.weight") << clicked.dump();
  EXPECT_NE(clicked["url"].get<std::string>().find("tensor=model%2Fstate%2Ffc2.weight"), std::string::npos) << clicked.dump();

  // The diff form: the folder's first and last checkpoints chosen and compared.
  json compared = page.evaluate(std::string("(async () => {") + kWaitFor + R"(
    document.getElementById('nav-diff').click();
    await waitFor(() => document.body.dataset.view === 'diff' && document.body.dataset.state === 'ready');
    const pick = (select, text) => {
      const o = [...select.options].find((x) => x.textContent.endsWith(text));
      select.value = o.value;
    };
    pick(document.getElementById('diff-a'), 'step-000000008.msgpack');
    pick(document.getElementById('diff-b'), 'step-000000024.msgpack');
    document.getElementById('diff-form').requestSubmit();
    // The default comparison (the last two files) is on the page until the chosen one replaces it.
    await waitFor(() => document.body.dataset.state === 'ready' &&
                        document.getElementById('diff-summary').textContent.includes('step-000000008.msgpack →'));
    return { summary: document.getElementById('diff-summary').textContent,
             differing: [...document.querySelectorAll('#diff-table tr.differs')].map((r) => r.dataset.path) };
  })())");
  EXPECT_NE(compared["summary"].get<std::string>().find("run / step-000000008.msgpack → run / step-000000024.msgpack: 4 of 4 tensors differ"),
            std::string::npos) << compared.dump();
  EXPECT_EQ(compared["differing"].size(), 4u) << compared.dump();
}

TEST(UiBrowser, ViewRefusesWhatItCannotRead) {
  ckpt_test::TempDir dir("ui-browser-refuse");
  std::string out;
  EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " view '" + (dir / "missing.msgpack").string() + "'", out), 2) << out;
  EXPECT_NE(out.find("missing.msgpack"), std::string::npos) << out;
  { std::ofstream(dir / "junk.msgpack") << "junk"; }
  EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " view '" + (dir / "junk.msgpack").string() + "'", out), 2) << out;
}

}  // namespace
