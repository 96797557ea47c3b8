"""Recipes: discovery, name lookup, domains, source path expansion and adding a user's own folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.config import Config
from assistant.corpus import (
    Recipe,
    add_recipe,
    corpora_for,
    get_recipe,
    list_recipes,
    load_recipe,
    source_paths,
)
from assistant.errors import ConfigError, InputError, NotFoundError
from tests.corpus.conftest import write_recipe

SHIPPED = {"filings": "finance", "medquad": "medical", "pubmedqa": "medical", "tatqa": "finance"}


def test_shipped_recipes_are_listed_and_valid(config: Config) -> None:
    recipes = {r.name: r for r in list_recipes(config)}
    for name, domain in SHIPPED.items():
        assert recipes[name].domain == domain
        assert recipes[name].path is not None and recipes[name].path.name == "recipe.yaml"
        assert recipes[name].license and recipes[name].description
    assert [r.name for r in list_recipes(config)] == sorted(recipes)


def test_corpora_for_domain_corpus_and_unknown(config: Config) -> None:
    assert corpora_for("medical", config) == ["medquad", "pubmedqa"]
    assert corpora_for("finance", config) == ["filings", "tatqa"]
    assert corpora_for("tatqa", config) == ["tatqa"]
    with pytest.raises(NotFoundError) as err:
        corpora_for("legal", config)
    message = str(err.value)
    assert "'legal'" in message and "finance, medical" in message and "pubmedqa" in message


def test_a_checkout_that_is_not_the_home_gives_only_its_shipped_recipes(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who ran `corpus add mine --domain finance` in the checkout (its default home) has
    corpora/mine/recipe.yaml there; another home (a test's) must not see it."""
    import assistant.config as config_module

    checkout = tmp_path / "checkout"
    (checkout / "pyproject.toml").parent.mkdir()
    (checkout / "pyproject.toml").write_text("", encoding="utf-8")
    for name, shipped in (("ours", True), ("mine", False)):
        folder = checkout / "corpora" / name
        folder.mkdir(parents=True)
        recipe = {"name": name, "domain": "finance", "loader": "files", "sources": ["."]}
        (folder / "recipe.yaml").write_text(yaml.safe_dump({**recipe, **({"shipped": True} if shipped else {})}))
    monkeypatch.setattr(config_module, "PROJECT_ROOT", checkout)
    assert corpora_for("finance", config) == ["ours"]
    # With the checkout as the data home, its user recipes are the home's own.
    assert corpora_for("finance", config.replace(home=checkout)) == ["mine", "ours"]


def test_unknown_corpus_lists_known_names(config: Config) -> None:
    with pytest.raises(NotFoundError, match=r"unknown corpus 'nope' \(known: .*medquad.*pubmedqa"):
        get_recipe("nope", config)


def test_home_recipe_overrides_the_checkout_one(config: Config, tmp_path: Path) -> None:
    write_recipe(config, "pubmedqa", "pubmedqa", [tmp_path], domain="medical")
    recipe = get_recipe("pubmedqa", config)
    assert recipe.path == config.corpora_dir / "pubmedqa" / "recipe.yaml"
    assert [r.name for r in list_recipes(config)].count("pubmedqa") == 1


def test_source_paths_expand_data_root_home_and_relative(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "x").mkdir(parents=True)
    (data / "x" / "a.json").write_text("{}")
    monkeypatch.setenv("ASSISTANT_DATA", str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "notes.txt").write_text("hi")
    recipe_file = write_recipe(config, "mine", "files", ["${ASSISTANT_DATA}/x/a.json", "~/notes.txt", "local.md"])
    (recipe_file.parent / "local.md").write_text("# Local")
    paths = source_paths(get_recipe("mine", config), config)
    assert paths == [data / "x" / "a.json", tmp_path / "notes.txt", recipe_file.parent / "local.md"]
    assert source_paths(get_recipe("mine", config), config, override=tmp_path / "notes.txt") == [tmp_path / "notes.txt"]


def test_missing_source_names_the_path(config: Config, tmp_path: Path) -> None:
    write_recipe(config, "mine", "files", [tmp_path / "absent.pdf"])
    with pytest.raises(InputError, match=r"corpus 'mine': source not found: .*absent\.pdf"):
        source_paths(get_recipe("mine", config), config)
    with pytest.raises(InputError, match=r"not found: .*nowhere"):
        source_paths(get_recipe("mine", config), config, override=tmp_path / "nowhere")


def test_bad_recipes_name_the_file(config: Config) -> None:
    folder = config.corpora_dir / "broken"
    folder.mkdir(parents=True)
    file = folder / "recipe.yaml"
    file.write_text("name: broken\ndomain: medical\nloader: files\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: missing 'sources'"):
        load_recipe(file)
    file.write_text(yaml.safe_dump({"name": "other", "domain": "medical", "loader": "files", "sources": ["x"]}))
    with pytest.raises(ConfigError, match="must match its folder 'broken'"):
        load_recipe(file)
    file.write_text(yaml.safe_dump({"domain": "medical", "loader": "files", "sources": ["x"], "colour": "red"}))
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_recipe(file)
    file.write_text("sources: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(file)
    with pytest.raises(ConfigError, match="name 'a b'"):
        Recipe(name="a b", domain="medical", loader="files", sources=("x",))


def test_add_recipe_writes_a_recipe_and_refuses_duplicates(config: Config, tmp_path: Path) -> None:
    docs = tmp_path / "my docs"
    docs.mkdir()
    recipe = add_recipe("mydocs", config, source=docs, domain="finance", license="private", description="My notes")
    assert recipe.path == config.corpora_dir / "mydocs" / "recipe.yaml"
    assert get_recipe("mydocs", config) == recipe
    assert recipe.sources == (str(docs.resolve()),) and recipe.loader == "files"
    assert "mydocs" in corpora_for("finance", config)
    with pytest.raises(InputError, match="corpus 'mydocs' already exists"):
        add_recipe("mydocs", config, source=docs, domain="finance")
    with pytest.raises(InputError, match="already exists"):
        add_recipe("pubmedqa", config, source=docs, domain="medical")
    with pytest.raises(NotFoundError, match=r"unknown domain 'legal' \(known: finance, medical\)"):
        add_recipe("other", config, source=docs, domain="legal")
    with pytest.raises(NotFoundError, match=r"unknown loader 'word' \(known: files, medquad, pubmedqa, tatqa\)"):
        add_recipe("other", config, source=docs, domain="medical", loader="word")
    with pytest.raises(InputError, match="source not found"):
        add_recipe("other", config, source=tmp_path / "absent", domain="medical")
    with pytest.raises(InputError, match="corpus name 'bad:name'"):
        add_recipe("bad:name", config, source=docs, domain="medical")
