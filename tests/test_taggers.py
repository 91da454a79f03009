"""The camel-tools NER backend loads a model from the camel-tools data layout, offline.

No real AraBERT weights can be fetched here, so a tiny randomly initialised BERT is saved where
`camel_data -i ner-arabert` would put the real one: the loading code is real, the predictions
are meaningless.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import child_env, marsad

LABELS = ["B-LOC", "B-ORG", "B-PERS", "B-MISC", "I-LOC", "I-ORG", "I-PERS", "I-MISC", "O"]


@pytest.fixture(scope="module")
def camel_data(tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification, BertTokenizer

    root = tmp_path_factory.mktemp("camel_tools")
    model_dir = root / "data" / "ner" / "arabert"
    model_dir.mkdir(parents=True)
    letters = [chr(c) for c in range(0x0621, 0x064B)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *letters,
             *[f"##{c}" for c in letters]]
    (model_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=False).save_pretrained(model_dir)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)),
                        label2id={label: i for i, label in enumerate(LABELS)})
    BertForTokenClassification(config).save_pretrained(model_dir)
    (root / "catalogue.json").write_text(json.dumps({
        "version": "1.6", "packages": {},
        "components": {"NamedEntityRecognition": {
            "default": "arabert", "datasets": {"arabert": {"path": "ner/arabert"}}}},
    }), encoding="utf-8")
    return root


def test_camel_backend_tags_a_conll_file(tmp_path, camel_data):
    conll = tmp_path / "in.conll"
    conll.write_text("قصفت\tO\nالطائرات\tO\nالبوكمال\tB-LOC\n\nقال\tO\nلافروف\tB-PERS\n",
                     encoding="utf-8")
    config = tmp_path / "marsad.toml"
    config.write_text('[ner]\nbackend = "camel"\n', encoding="utf-8")
    result = marsad("ner", "--conll", str(conll), "--out", str(tmp_path / "out.tsv"),
                    "--config", str(config), cwd=tmp_path,
                    env=child_env(CAMELTOOLS_DATA=str(camel_data)))
    assert result.returncode == 0, result.stderr
    blocks = (tmp_path / "out.tsv").read_text(encoding="utf-8").strip().split("\n\n")
    rows = [[line.split("\t") for line in block.splitlines()] for block in blocks]
    assert [[token for token, _ in block] for block in rows] == [
        ["قصفت", "الطائرات", "البوكمال"], ["قال", "لافروف"]]
    assert all(tag in LABELS for block in rows for _, tag in block)
    assert "LOC" in result.stdout  # gold tags present: scores per type are printed


def test_camel_backend_without_data_is_a_clear_error(tmp_path):
    conll = tmp_path / "in.conll"
    conll.write_text("البوكمال\n", encoding="utf-8")
    config = tmp_path / "marsad.toml"
    config.write_text('[ner]\nbackend = "camel"\n', encoding="utf-8")
    result = marsad("ner", "--conll", str(conll), "--out", str(tmp_path / "out.tsv"),
                    "--config", str(config), cwd=tmp_path,
                    env=child_env(CAMELTOOLS_DATA=str(tmp_path / "empty")))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "camel_data -i ner-arabert" in result.stderr
