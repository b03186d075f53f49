// qoracle eetq-decode: read one EETQ layer's checkpoint tensors (`weight` int8 [in, out] in an
// architecture's byte layout, `weight_scales` fp16 [out], optional `bias`) from an HDF5 file and
// write them decoded: `codes` int8 [out, in], `scales`, `bias`. Checkpoints do not record their
// layout, so the user names it (default: sm75-sm89, what Ampere/Ada GPUs write).
#include <iostream>

#include "conformance/case_runner.hpp"
#include "fixtures/format/checkpoint_layer.hpp"
#include "fixtures/format/hdf5_file.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"

namespace qoracle::cli {

int eetq_decode_command(const std::vector<std::string>& args) {
  std::string in_path, out_path, prefix;
  EetqLayout layout = EetqLayout::Interleaved;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) out_path = args[++i];
    else if (args[i] == "--prefix" && i + 1 < args.size()) prefix = args[++i];
    else if (args[i] == "--layout" && i + 1 < args.size()) layout = parse_eetq_layout(args[++i]);
    else if (!args[i].starts_with("--") && in_path.empty()) in_path = args[i];
    else throw Error("unknown or incomplete option '" + args[i] + "'");
  }
  if (in_path.empty()) throw Error("expected the checkpoint's HDF5 file: eetq-decode FILE [--prefix P] [--layout L] [--out FILE]");
  // The checkpoint is untrusted input: read in a child, so a file that crashes HDF5 is an error.
  const CheckpointLayer read = read_checkpoint_layer_isolated(in_path, prefix);
  std::optional<Vector> bias;
  if (read.bias) bias = read.bias->as_vector(prefix + "bias");
  const EetqLinear layer =
      eetq_from_checkpoint_tensors(read.weight, read.weight_scales, bias, layout, EetqKernel::Exact, in_path + "/" + prefix);
  const int in = layer.in_features(), out = layer.out_features();
  const EetqQuantized& q = layer.quantized();
  const auto count = [&](int v) { return (q.q.array() == v).count(); };
  std::cout << prefix << "weight: in_features " << in << ", out_features " << out << ", layout " << eetq_layout_name(layout)
            << "\n  codes in [" << q.q.minCoeff() << ", " << q.q.maxCoeff() << "]; " << count(127) << " at 127, " << count(-128)
            << " at -128\n  scales in [" << q.scales.minCoeff() << ", " << q.scales.maxCoeff() << "]; "
            << (q.scales.array() == 0).count() << " zero (channels that dequantize to 0)\n";
  if (!out_path.empty()) {
    const h5::Handle o = h5::create_file(out_path);
    Tensor codes = Tensor::from_matrix(q.q.cast<double>(), Dtype::Float64);
    codes.stored_type = "int8";
    h5::write_tensor(o.get(), "codes", codes);
    h5::write_tensor(o.get(), "scales", Tensor::from_vector(q.scales, Dtype::Float16));
    if (bias) h5::write_tensor(o.get(), "bias", Tensor::from_vector(*bias, Dtype::Float16));
    std::cout << "wrote codes [" << out << ", " << in << "], scales and " << (bias ? "bias" : "no bias") << " to " << out_path << "\n";
  }
  return 0;
}

}  // namespace qoracle::cli
