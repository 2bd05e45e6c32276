// Which activation layout the Conv2d layer should ask oneDNN for: times forward, data gradient
// and weight gradient of the ConvNet's two convolutions (and a few other channel counts) at
// batch 64 for each layout choice, and names the implementation oneDNN picked. The rule in
// train/src/layer_conv2d.cpp comes from this table (see README.md).
//   bench_conv_layouts [threads]
#include <dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace dnnl;
using tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

// Lower quartile of the runs: on a shared machine the slow runs measure the neighbours.
double microseconds(const primitive& p, stream& s, const Args& args) {
  std::vector<double> t;
  for (int i = 0; i < 40; ++i) {
    auto start = std::chrono::steady_clock::now();
    p.execute(s, args);
    s.wait();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    if (t.back() > 1e5) break;  // a reference implementation: one run says enough
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 4];
}

memory filled(const memory::desc& md, const engine& eng) {
  memory m(md, eng);
  std::fill_n(static_cast<float*>(m.get_data_handle()), md.get_size() / sizeof(float), 0.01f);
  return m;
}

struct Conv {
  memory::dim ic, size, oc, k;
};
struct Layout {
  const char* name;
  tag src, dst;
};

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(argc > 1 ? std::atoi(argv[1]) : 1);
  set_primitive_cache_capacity(0);  // each line measures its own choice (see engine.cpp)
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  std::printf("%-6s %-12s %28s %28s %28s %9s\n", "conv", "layout", "forward us", "data grad us",
              "weight grad us", "total us");
  for (Conv c : {Conv{1, 28, 10, 5}, Conv{10, 12, 20, 5}, Conv{3, 32, 16, 5}, Conv{6, 14, 16, 5},
                 Conv{16, 14, 32, 3}}) {
    const memory::dim n = 64, o = c.size - c.k + 1;
    for (Layout l : {Layout{"any", tag::any, tag::any}, Layout{"nchw", tag::nchw, tag::nchw},
                     Layout{"nchw->any", tag::nchw, tag::any}, Layout{"nhwc", tag::nhwc, tag::nhwc}}) {
      std::string name = std::to_string(c.ic) + "->" + std::to_string(c.oc);
      try {
        memory::desc src({n, c.ic, c.size, c.size}, memory::data_type::f32, l.src);
        memory::desc wei({c.oc, c.ic, c.k, c.k}, memory::data_type::f32, tag::any);
        memory::desc bia({c.oc}, memory::data_type::f32, tag::a);
        memory::desc dst({n, c.oc, o, o}, memory::data_type::f32, l.dst);
        const memory::dims one{1, 1}, zero{0, 0};
        auto alg = algorithm::convolution_direct;
        convolution_forward::primitive_desc f(
            {prop_kind::forward_training, alg, src, wei, bia, dst, one, zero, zero}, eng);
        convolution_backward_data::primitive_desc d({alg, src, wei, dst, one, zero, zero}, eng, f);
        convolution_backward_weights::primitive_desc w({alg, src, wei, bia, dst, one, zero, zero}, eng, f);
        Args fa{{DNNL_ARG_SRC, filled(f.src_desc(), eng)}, {DNNL_ARG_WEIGHTS, filled(f.weights_desc(), eng)},
                {DNNL_ARG_BIAS, filled(bia, eng)}, {DNNL_ARG_DST, filled(f.dst_desc(), eng)}};
        Args da{{DNNL_ARG_DIFF_DST, filled(d.diff_dst_desc(), eng)}, {DNNL_ARG_WEIGHTS, filled(d.weights_desc(), eng)},
                {DNNL_ARG_DIFF_SRC, filled(d.diff_src_desc(), eng)}};
        Args wa{{DNNL_ARG_SRC, filled(w.src_desc(), eng)}, {DNNL_ARG_DIFF_DST, filled(w.diff_dst_desc(), eng)},
                {DNNL_ARG_DIFF_WEIGHTS, filled(w.diff_weights_desc(), eng)}, {DNNL_ARG_DIFF_BIAS, filled(bia, eng)}};
        double tf = microseconds(convolution_forward(f), s, fa);
        double td = microseconds(convolution_backward_data(d), s, da);
        double tw = microseconds(convolution_backward_weights(w), s, wa);
        auto cell = [](double t, const primitive_desc_base& pd) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%9.0f %-18s", t, pd.impl_info_str());
          return std::string(buf);
        };
        // A gradient primitive that wants other layouts than the forward produced costs
        // reorders on top.
        bool same = w.src_desc() == f.src_desc() && w.diff_dst_desc() == f.dst_desc() &&
                    d.diff_dst_desc() == f.dst_desc();
        std::printf("%-6s %-12s %s %s %s %9.0f%s\n", name.c_str(), l.name, cell(tf, f).c_str(),
                    cell(td, d).c_str(), cell(tw, w).c_str(), tf + td + tw, same ? "" : "  +reorders");
      } catch (const dnnl::error& e) {
        std::printf("%-6s %-12s unsupported (%s)\n", name.c_str(), l.name, e.what());
      }
      std::fflush(stdout);
    }
  }
}
