import re
import tomllib


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = set(map(_norm, project["dependencies"]))
    for name, reqs in project["optional-dependencies"].items():
        wanted |= {_norm(r) for r in reqs if not r.startswith("dimr[")}
    text = (repo_root / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {_norm(m) for m in re.findall(r"^\s+-\s+(\S.*)$", pip_section, flags=re.M)}
    assert "-e." in listed, "environment.yml must install this package"
    assert listed - {"-e."} == wanted


def test_readme_commands_are_what_ci_runs(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (repo_root / ".ci" / "run").read_text()
