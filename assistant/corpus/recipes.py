"""Corpus recipes: `corpora/<name>/recipe.yaml` says where a corpus's files are and which loader reads them.

    from assistant.corpus import list_recipes, get_recipe, corpora_for, add_recipe
    [r.name for r in list_recipes(config)]        # ['filings', 'medquad', 'pubmedqa', 'tatqa', ...]
    corpora_for("medical", config)                # ['medquad', 'pubmedqa']

Recipes are looked up in `config.recipe_dirs`: the data home's `corpora/` first (a user's own recipes,
or overrides of shipped ones), then the source checkout's `corpora/`, from which only the recipes marked
`shipped: true` are taken: when the checkout is not the data home, the recipes a user added there belong
to that other home (and tests, which run in a temporary home, never see them). A recipe looks like

    name: pubmedqa
    domain: medical
    loader: pubmedqa
    sources: [${ASSISTANT_DATA}/medical/pubmedqa/ori_pqal.json]
    license: MIT
    options: {}

`${ASSISTANT_DATA}` is the shipped data folder (`assistant.config.data_root()`), `~` the user's home, and
relative paths are relative to the recipe's folder. See corpora/README.md.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from assistant.config import Config, data_root
from assistant.corpus.recipe import NAME, Recipe
from assistant.errors import ConfigError, InputError, NotFoundError, unknown

RECIPE_FILE = "recipe.yaml"
_DATA_VAR = re.compile(r"\$\{ASSISTANT_DATA\}|\$ASSISTANT_DATA\b")


_KEYS = {f.name for f in fields(Recipe)} - {"path"}


def load_recipe(path: Path) -> Recipe:
    """Read and validate one recipe file; its name defaults to (and must match) its folder's name."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping with name, domain, loader and sources")
    extra = sorted(set(data) - _KEYS)
    if extra:
        raise ConfigError(f"{path}: unknown key '{extra[0]}' (known: {', '.join(sorted(_KEYS))})")
    data.setdefault("name", path.parent.name)
    if data["name"] != path.parent.name:
        raise ConfigError(f"{path}: name '{data['name']}' must match its folder '{path.parent.name}'")
    missing = [k for k in ("domain", "loader", "sources") if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing '{missing[0]}' (a recipe needs name, domain, loader and sources)")
    for key in ("license", "description", "url"):
        data[key] = "" if data.get(key) is None else str(data[key]).strip()
    data["options"] = data.get("options") or {}
    return Recipe(**data, path=path)


def list_recipes(config: Config) -> list[Recipe]:
    """Every recipe, home first then the checkout's shipped ones (a name found twice keeps the first),
    sorted by name."""
    found: dict[str, Recipe] = {}
    for depth, folder in enumerate(config.recipe_dirs):
        if not folder.is_dir():
            continue
        for sub in sorted(folder.iterdir()):
            file = sub / RECIPE_FILE
            if sub.name.startswith(".") or sub.name in found or not file.is_file():
                continue
            recipe = load_recipe(file)
            if depth == 0 or recipe.shipped:
                found[sub.name] = recipe
    return [found[name] for name in sorted(found)]


def get_recipe(name: str, config: Config) -> Recipe:
    for recipe in list_recipes(config):
        if recipe.name == name:
            return recipe
    raise unknown("corpus", name, [r.name for r in list_recipes(config)])


def corpora_for(name: str, config: Config) -> list[str]:
    """A domain's corpus names (sorted), or `[name]` for a corpus; NotFoundError lists both otherwise."""
    recipes = list_recipes(config)
    domains = set(config.domains) | {r.domain for r in recipes}
    if name in domains:
        return sorted(r.name for r in recipes if r.domain == name)
    if name in {r.name for r in recipes}:
        return [name]
    raise NotFoundError(
        f"unknown domain or corpus '{name}' (domains: {', '.join(sorted(domains)) or 'none'}; "
        f"corpora: {', '.join(r.name for r in recipes) or 'none yet'})"
    )


def expand_source(source: str, base: Path | None) -> Path:
    """`${ASSISTANT_DATA}` -> the data root, `~` -> home, relative -> relative to `base` (the recipe's folder)."""
    text = _DATA_VAR.sub(lambda _: str(data_root()), source)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.resolve()


def source_paths(recipe: Recipe, config: Config, override: Path | None = None) -> list[Path]:
    """The recipe's sources as existing paths, or `[override]`; a missing one raises InputError naming it."""
    if override is not None:
        path = Path(override).expanduser().resolve()
        if not path.exists():
            raise InputError(f"corpus '{recipe.name}': source not found: {path} (give an existing file or folder)")
        return [path]
    paths: list[Path] = []
    for source in recipe.sources:
        if re.match(r"^[a-z]+://", source):
            raise InputError(
                f"corpus '{recipe.name}': source {source} is a URL; nothing is downloaded at run time: "
                f"download it and run `assistant corpus prepare {recipe.name} --from PATH`"
            )
        path = expand_source(source, recipe.path.parent if recipe.path else None)
        if not path.exists():
            fix = "set ASSISTANT_DATA to the data folder" if _DATA_VAR.search(source) else f"fix {recipe.path}"
            raise InputError(f"corpus '{recipe.name}': source not found: {path} ({fix}, or pass --from PATH)")
        paths.append(path)
    return paths


def add_recipe(
    name: str,
    config: Config,
    *,
    source: Path,
    domain: str,
    loader: str = "files",
    license: str = "",
    description: str = "",
) -> Recipe:
    """Write `<home>/corpora/<name>/recipe.yaml` for a user's own files; `prepare(name)` then reads them."""
    from assistant.corpus.loaders import get_loader

    if not NAME.match(name):
        raise InputError(f"corpus name {name!r} must be letters, digits, '_', '-' or '.' (no spaces, ':' or '/')")
    existing = {r.name: r for r in list_recipes(config)}
    if name in existing:
        raise InputError(f"corpus '{name}' already exists ({existing[name].path}); choose another name")
    config.domain(domain)  # NotFoundError listing the domains
    get_loader(loader)  # NotFoundError listing the loaders
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise InputError(f"source not found: {path} (give an existing file or folder)")
    file = config.corpora_dir / name / RECIPE_FILE
    recipe = Recipe(
        name=name,
        domain=domain,
        loader=loader,
        sources=(str(path),),
        license=license,
        description=description or f"{name}: documents from {path}",
        path=file,
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return recipe
