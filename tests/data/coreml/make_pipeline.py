"""Writes pipeline.mlpackage (a detector as Ultralytics exports YOLO with `nms=True`: an ML
program that scores boxes, followed by Core ML's `nonMaximumSuppression` model, in a pipeline),
classifier.mlpackage (as Create ML ends an image classifier: an ML program computing features,
then a `glmClassifier`, in a `pipelineClassifier`) and pipeline_facts.json: what coremltools reads
back of each pipeline (each model's kind, inputs and outputs; the ML program's operations; the
NMS thresholds and classes; the GLM's weights, offsets and classes). glm.mlmodel is that GLM
saved as a model of its own.

    python make_pipeline.py        (coremltools 9; conversion runs on Linux)
"""
import json
import os
import shutil

import coremltools as ct
import numpy as np
from coremltools.converters.mil import Builder as mb

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(5)
W_BOX = rng.standard_normal((4, 16)).astype(np.float32)
W_CLS = rng.standard_normal((3, 16)).astype(np.float32)


@mb.program(input_specs=[mb.TensorSpec(shape=(10, 16))], opset_version=ct.target.iOS16)
def detector(features):
    boxes = mb.linear(x=features, weight=W_BOX, name="boxes")
    logits = mb.linear(x=features, weight=W_CLS, name="class_logits")
    scores = mb.softmax(x=logits, axis=-1, name="scores")
    return boxes, scores


W_EMB = rng.standard_normal((8, 16)).astype(np.float32)
W_GLM = rng.standard_normal((3, 8))
B_GLM = rng.standard_normal(3)
LABELS = ["cat", "dog", "bird"]


@mb.program(input_specs=[mb.TensorSpec(shape=(1, 16))], opset_version=ct.target.iOS16)
def embedder(image_features):
    e = mb.linear(x=image_features, weight=W_EMB, name="embed")
    return mb.relu(x=e, name="embedding")


def program(prog, package):
    """The package path a pipeline is written to (cleared) and `prog` converted, FP32, iOS 16."""
    path = os.path.join(HERE, package)
    shutil.rmtree(path, ignore_errors=True)
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    return path, model


def kind_of(spec):
    return spec.WhichOneof("Type")


def main():
    path, model = program(detector, "pipeline.mlpackage")
    spec = model.get_spec()
    boxes_name, scores_name = [o.name for o in spec.description.output]

    # The NMS model, as Ultralytics' exporter writes it.
    nms = ct.proto.Model_pb2.Model()
    nms.specificationVersion = spec.specificationVersion
    for name, shape in ((scores_name, (10, 3)), (boxes_name, (10, 4))):
        for desc in (nms.description.input, nms.description.output):
            f = desc.add()
            f.ParseFromString(spec.description.output[0].SerializeToString())
            f.name = name
            f.type.multiArrayType.shape[:] = shape
    nms.description.output[0].name = "confidence"
    nms.description.output[1].name = "coordinates"
    p = nms.nonMaximumSuppression
    p.confidenceInputFeatureName = scores_name
    p.coordinatesInputFeatureName = boxes_name
    p.confidenceOutputFeatureName = "confidence"
    p.coordinatesOutputFeatureName = "coordinates"
    p.iouThresholdInputFeatureName = ""
    p.confidenceThresholdInputFeatureName = ""
    p.iouThreshold = 0.45
    p.confidenceThreshold = 0.25
    p.pickTop.perClass = True
    p.stringClassLabels.vector.extend(["cat", "dog", "bird"])

    pipeline = ct.models.pipeline.Pipeline(
        input_features=[("features", ct.models.datatypes.Array(10, 16))],
        output_features=["confidence", "coordinates"])
    pipeline.add_model(model)
    pipeline.add_model(nms)
    pipeline.spec.description.input[0].ParseFromString(spec.description.input[0].SerializeToString())
    pipeline.spec.description.output[0].ParseFromString(nms.description.output[0].SerializeToString())
    pipeline.spec.description.output[1].ParseFromString(nms.description.output[1].SerializeToString())
    pipeline.spec.specificationVersion = spec.specificationVersion
    out = ct.models.MLModel(pipeline.spec, weights_dir=model.weights_dir, skip_model_load=True)
    out.save(path)

    facts = describe(path)
    facts["weights"] = {"boxes": [float(v) for v in W_BOX.reshape(-1)[:4]],
                        "class_logits": [float(v) for v in W_CLS.reshape(-1)[:4]]}
    facts = {"coremltools": ct.__version__, "detector": facts, "classifier": classifier()}
    with open(os.path.join(HERE, "pipeline_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


def describe(path):
    """What coremltools reads back of a pipeline package."""
    back = ct.models.MLModel(path, skip_model_load=True).get_spec()
    kind = kind_of(back)
    pipe = back.pipeline if kind == "pipeline" else getattr(back, kind).pipeline
    facts = {
        "kind": kind,
        "inputs": [i.name for i in back.description.input],
        "outputs": [o.name for o in back.description.output],
        "models": [],
    }
    for m in pipe.models:
        entry = {"kind": kind_of(m), "inputs": [i.name for i in m.description.input],
                 "outputs": [o.name for o in m.description.output]}
        if kind_of(m) == "mlProgram":
            fn = m.mlProgram.functions["main"]
            block = fn.block_specializations[fn.opset]
            entry["operations"] = [o.type for o in block.operations if o.type != "const"]
        if kind_of(m) == "nonMaximumSuppression":
            n = m.nonMaximumSuppression
            entry["iouThreshold"] = n.iouThreshold
            entry["confidenceThreshold"] = n.confidenceThreshold
            entry["classLabels"] = list(n.stringClassLabels.vector)
        if kind_of(m) == "glmClassifier":
            g = m.glmClassifier
            entry["weights"] = [list(w.value) for w in g.weights]
            entry["offset"] = list(g.offset)
            entry["classLabels"] = list(g.stringClassLabels.vector)
        facts["models"].append(entry)
    return facts


def classifier():
    """Create ML's image classifier shape: features, then a GLM, in a pipelineClassifier."""
    path, model = program(embedder, "classifier.mlpackage")
    spec = model.get_spec()
    glm = ct.proto.Model_pb2.Model()
    glm.specificationVersion = spec.specificationVersion
    f = glm.description.input.add()
    f.ParseFromString(spec.description.output[0].SerializeToString())
    glm.description.input[0].type.multiArrayType.shape[:] = [8]
    label = glm.description.output.add()
    label.name = "classLabel"
    label.type.stringType.MergeFromString(b"")
    probs = glm.description.output.add()
    probs.name = "classProbability"
    probs.type.dictionaryType.stringKeyType.MergeFromString(b"")
    glm.description.predictedFeatureName = "classLabel"
    glm.description.predictedProbabilitiesName = "classProbability"
    g = glm.glmClassifier
    for row in W_GLM:
        g.weights.add().value.extend(row.tolist())
    g.offset.extend(B_GLM.tolist())
    g.postEvaluationTransform = g.Logit
    g.classEncoding = g.OneVsRest
    g.stringClassLabels.vector.extend(LABELS)
    # The GLM alone too, as a model of its own.
    ct.utils.save_spec(glm, os.path.join(HERE, "glm.mlmodel"))
    pipeline = ct.models.pipeline.PipelineClassifier(
        input_features=[("image_features", ct.models.datatypes.Array(1, 16))],
        class_labels=LABELS, output_features=["classLabel", "classProbability"])
    pipeline.add_model(model)
    pipeline.add_model(glm)
    pipeline.spec.description.input[0].ParseFromString(spec.description.input[0].SerializeToString())
    pipeline.spec.specificationVersion = spec.specificationVersion
    out = ct.models.MLModel(pipeline.spec, weights_dir=model.weights_dir, skip_model_load=True)
    out.save(path)
    return describe(path)


if __name__ == "__main__":
    main()
