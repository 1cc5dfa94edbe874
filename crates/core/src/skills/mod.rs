//! Skills: Markdown instructions (`skills/*/SKILL.md` with YAML front matter) bundled into the build and
//! selected per turn by keyword and tag match, within a token budget.

use serde::Deserialize;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_skills.rs"));
}

/// A skill file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("skill {file}: {reason}")]
pub struct SkillError {
    /// The file, as a repository path.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FrontMatter {
    name: String,
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    allowed_tools: Vec<String>,
}

/// One loaded skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    /// Unique name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Tags (matched as whole words).
    pub tags: Vec<String>,
    /// Keywords and phrases (matched as substrings).
    pub keywords: Vec<String>,
    /// Tools the skill relies on.
    pub allowed_tools: Vec<String>,
    /// The Markdown instructions.
    pub body: String,
}

impl Skill {
    /// Parses a SKILL.md text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Skill, SkillError> {
        let error = |reason: String| SkillError { file: file.to_string(), reason };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let rest = text
            .strip_prefix("---\n")
            .or_else(|| text.strip_prefix("---\r\n"))
            .ok_or_else(|| error("must start with a `---` front matter line".into()))?;
        let end = rest
            .find("\n---\n")
            .or_else(|| rest.find("\n---\r\n"))
            .or_else(|| rest.strip_suffix("\n---").map(|r| r.len()))
            .ok_or_else(|| error("front matter is not closed by a `---` line".into()))?;
        let front: FrontMatter =
            serde_yaml_ng::from_str(&rest[..end]).map_err(|e| error(format!("invalid front matter: {e}")))?;
        let body = rest[end..].trim_start_matches('\n').trim_start_matches("---").trim().to_string();
        if front.name.trim().is_empty()
            || !front.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(error(format!("name `{}` must be non-empty letters, digits, - or _", front.name)));
        }
        if front.description.trim().is_empty() {
            return Err(error("description must not be empty".into()));
        }
        if body.is_empty() {
            return Err(error("the instructions after the front matter are empty".into()));
        }
        let lower = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
        Ok(Skill {
            name: front.name,
            description: front.description.trim().to_string(),
            tags: lower(front.tags),
            keywords: lower(front.keywords),
            allowed_tools: front.allowed_tools,
            body,
        })
    }

    /// How strongly the message calls for this skill: keyword phrases count 2, tags and the name 1.
    fn score(&self, message: &str, words: &[&str]) -> usize {
        let keyword_hits = self.keywords.iter().filter(|k| message.contains(k.as_str())).count();
        let tag_hits = self.tags.iter().filter(|t| words.contains(&t.as_str())).count();
        let name_hit = usize::from(words.contains(&self.name.to_lowercase().as_str()));
        2 * keyword_hits + tag_hits + name_hit
    }

    /// Rough token cost of injecting the skill.
    fn tokens(&self) -> usize {
        self.body.len() / 4 + 16
    }
}

/// The skills available to the agent.
#[derive(Debug, Clone, Default)]
pub struct SkillRegistry {
    skills: Vec<Skill>,
}

impl SkillRegistry {
    /// Loads skills from `(file, text)` pairs; names must be unique.
    pub fn load(files: &[(&str, &str)]) -> Result<Self, SkillError> {
        let mut skills: Vec<Skill> = Vec::with_capacity(files.len());
        for (file, text) in files {
            let skill = Skill::parse(file, text)?;
            if skills.iter().any(|s| s.name == skill.name) {
                return Err(SkillError {
                    file: file.to_string(),
                    reason: format!("duplicate skill name `{}`", skill.name),
                });
            }
            skills.push(skill);
        }
        Ok(Self { skills })
    }

    /// The skills bundled into this build from the repository's `skills/` folder.
    pub fn bundled() -> Result<Self, SkillError> {
        Self::load(bundled::BUNDLED)
    }

    /// All skills.
    pub fn all(&self) -> &[Skill] {
        &self.skills
    }

    /// The skills matching `message`, best first, whose bodies fit in `budget_tokens` together.
    pub fn select(&self, message: &str, budget_tokens: usize) -> Vec<&Skill> {
        let message = message.to_lowercase();
        let words: Vec<&str> =
            message.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_').filter(|w| !w.is_empty()).collect();
        let mut scored: Vec<(usize, &Skill)> =
            self.skills.iter().map(|s| (s.score(&message, &words), s)).filter(|(score, _)| *score > 0).collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let mut used = 0;
        let mut chosen = Vec::new();
        for (_, skill) in scored {
            if used + skill.tokens() <= budget_tokens {
                used += skill.tokens();
                chosen.push(skill);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nname: trip-planner\ndescription: Plans trips\ntags: [travel]\nkeywords: [\"flight\", \"time zone\"]\nallowed-tools: [current_time]\n---\n# Trips\nDo things.\n";

    #[test]
    fn front_matter_and_body_are_parsed() {
        let skill = Skill::parse("skills/t/SKILL.md", GOOD).unwrap();
        assert_eq!(skill.name, "trip-planner");
        assert_eq!(skill.keywords, vec!["flight", "time zone"]);
        assert_eq!(skill.allowed_tools, vec!["current_time"]);
        assert_eq!(skill.body, "# Trips\nDo things.");
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        for (text, expected) in [
            ("no front matter", "must start"),
            ("---\nname: x\n", "not closed"),
            ("---\nname: [\n---\nbody", "invalid front matter"),
            ("---\nname: x\ndescription: d\ncolour: red\n---\nbody", "unknown field"),
            ("---\nname: bad name\ndescription: d\n---\nbody", "must be non-empty"),
            ("---\nname: x\ndescription: d\n---\n", "empty"),
        ] {
            let err = Skill::parse("skills/bad/SKILL.md", text).unwrap_err().to_string();
            assert!(err.starts_with("skill skills/bad/SKILL.md:") && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn selection_ranks_by_matches_and_respects_the_budget() {
        let other = "---\nname: cooking\ndescription: Recipes\ntags: [food]\n---\nCook.";
        let registry = SkillRegistry::load(&[("a", GOOD), ("b", other)]).unwrap();
        let names = |v: Vec<&Skill>| v.into_iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(registry.select("Book a FLIGHT, what time zone is Tokyo? travel food", 1000)),
            ["trip-planner", "cooking"]
        );
        assert_eq!(names(registry.select("nothing relevant", 1000)), Vec::<String>::new());
        assert_eq!(names(registry.select("flight and food", 17)), ["cooking"]);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        assert!(SkillRegistry::load(&[("a", GOOD), ("b", GOOD)]).unwrap_err().reason.contains("duplicate"));
    }

    #[test]
    fn every_bundled_skill_loads() {
        let registry = SkillRegistry::bundled().unwrap();
        assert!(registry.all().len() >= 3);
    }
}
