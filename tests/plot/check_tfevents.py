"""Reads TensorBoard event files as TensorBoard does, independently of tlens.

usage: check_tfevents.py WORKDIR DIR --expect FILE.json
       check_tfevents.py WORKDIR DIR --metrics metrics.jsonl

The records are split by the TFRecord framing with every CRC checked (CRC-32C
computed here bit by bit, masked as TFRecord does); each record's data is parsed
as a tensorflow.Event with Google's protobuf runtime, from a .proto written here
(the field numbers of TensorFlow's event.proto and summary.proto) and compiled
by protoc into WORKDIR. DIR must hold exactly one events.out.tfevents.* file,
whose first Event is file_version "brain.Event:2" and every other one a Summary
of one simple_value.

--expect: the [step, tag, value, wall_time] list, in order.
--metrics: every step of metrics.jsonl (the last line of each step) with the
reference's tag names: loss/<stream> in bits/byte when loss_bpb is there (else
nats/token), loss/mean, loss_nats/* beside bits, lr, grad_norm, tokens_per_s, step_s."""
import glob
import json
import math
import os
import struct
import subprocess
import sys

PROTO = """
syntax = "proto3";
package tensorflow;
message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value {
      float simple_value = 2;
      bytes obsolete_old_style_histogram = 3;
    }
  }
  repeated Value value = 1;
}
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    bytes graph_def = 4;
    Summary summary = 5;
  }
}
"""


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at, out = 0, []
    while at < len(data):
        assert at + 12 <= len(data), f"{path}: a record header cut at byte {at}"
        head = data[at:at + 8]
        (n,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert hcrc == masked(crc32c(head)), f"{path}: length CRC of the record at byte {at}"
        body = data[at + 12:at + 12 + n]
        assert len(body) == n and at + 16 + n <= len(data), f"{path}: record at byte {at} cut"
        (dcrc,) = struct.unpack("<I", data[at + 12 + n:at + 16 + n])
        assert dcrc == masked(crc32c(body)), f"{path}: data CRC of the record at byte {at}"
        out.append(body)
        at += 16 + n
    return out


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def same(a, b):
    if math.isnan(b):
        return math.isnan(a)
    return a == f32(b)


def main(argv):
    work, d, mode, arg = argv[0], argv[1], argv[2], argv[3]
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "tfevent.proto"), "w") as f:
        f.write(PROTO)
    subprocess.run(["protoc", f"--proto_path={work}", f"--python_out={work}", "tfevent.proto"], check=True)
    sys.path.insert(0, work)
    import tfevent_pb2

    # TensorBoard reads a folder's files in the order of their names
    files = sorted(glob.glob(os.path.join(d, "events.out.tfevents.*")))
    assert files and (mode != "--expect" or len(files) == 1), files
    got, nevents = [], 0
    for path in files:
        events = []
        for body in records(path):
            e = tfevent_pb2.Event()
            e.ParseFromString(body)
            assert e.SerializeToString() == body, "the record is not a canonical Event encoding"
            events.append(e)
        assert events and events[0].WhichOneof("what") == "file_version", (path, events[:1])
        assert events[0].file_version == "brain.Event:2", events[0].file_version
        for e in events[1:]:
            assert e.WhichOneof("what") == "summary" and len(e.summary.value) == 1, e
            v = e.summary.value[0]
            assert v.WhichOneof("value") == "simple_value", v
            got.append((e.step, v.tag, v.simple_value, e.wall_time))
        nevents += len(events)

    if mode == "--expect":
        want = json.load(open(arg))
        assert len(got) == len(want), (len(got), len(want))
        for g, w in zip(got, want):
            assert g[0] == w[0] and g[1] == w[1] and same(g[2], w[2]) and g[3] == w[3], (g, w)
    else:
        steps = {}
        for line in open(arg):
            m = json.loads(line)
            steps[m["step"]] = m  # a step run again after a resume: the last line
        want = []
        for step in sorted(steps):
            m = steps[step]
            nats = m["loss_nats"]
            L = len(nats)
            names = ["input"] + [f"{i}.ffn" for i in range(L - 1)]
            bpb = m.get("loss_bpb")
            first = bpb if bpb is not None else nats
            for name, v in zip(names, first):
                want.append((step, f"loss/{name}", v))
            want.append((step, "loss/mean", sum(first) / L))
            if bpb is not None:
                for name, v in zip(names, nats):
                    want.append((step, f"loss_nats/{name}", v))
                want.append((step, "loss_nats/mean", sum(nats) / L))
            for k in ("lr", "grad_norm", "tokens_per_s", "step_s"):
                want.append((step, k, m[k]))
        # every event of a step written again after a resume comes again, later
        last = {}
        for g in got:
            last[(g[0], g[1])] = g[2]
        assert len(last) == len(want), (len(last), len(want))
        # metrics.jsonl holds 9 significant digits of the value the events hold as
        # floats; tokens_per_s it rounds to 0.1, step_s to 0.0001
        printed = {"tokens_per_s": 0.05, "step_s": 0.00005}
        for step, tag, v in want:
            g = last[(step, tag)]
            assert math.isclose(g, v, rel_tol=2e-7, abs_tol=printed.get(tag, 1e-30) * 1.001), (step, tag, g, v)
    print(f"{d}: {len(files)} file(s), {nevents} events, every CRC right, {len(got)} scalars as expected")


if __name__ == "__main__":
    main(sys.argv[1:])
