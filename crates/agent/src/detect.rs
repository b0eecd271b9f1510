//! Resource detection and `--attributes` parsing.

use std::path::Path;

use api::resources::{ResourceError, Resources};
use api::v1::{Attribute, Resource, value};

const GIB_MB: f64 = 1024.0;

/// What the machine offers: cpus, mem and disk (in MB) as Mesos computes them, and ports.
pub fn detect(work_dir: &Path) -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mem_total_mb = total_memory_mb().unwrap_or(0.0);
    let mem = if mem_total_mb >= 2.0 * GIB_MB {
        mem_total_mb - GIB_MB
    } else {
        mem_total_mb / 2.0
    };
    let disk_free_mb = free_disk_mb(work_dir).unwrap_or(0.0);
    let disk = if disk_free_mb >= 10.0 * GIB_MB {
        disk_free_mb - 5.0 * GIB_MB
    } else {
        disk_free_mb / 2.0
    };
    let text = format!(
        "cpus:{cpus};mem:{};disk:{};ports:[31000-32000]",
        mem.floor(),
        disk.floor()
    );
    Resources::parse(&text).unwrap_or_else(|_| Resources::new())
}

/// Detected resources with any names given in `--resources` replacing the detected ones.
pub fn resources(work_dir: &Path, flag: Option<&str>) -> Result<Resources, ResourceError> {
    let detected = detect(work_dir);
    let Some(flag) = flag.filter(|f| !f.trim().is_empty()) else {
        return Ok(detected);
    };
    let given = Resources::parse(flag)?;
    let mut names: Vec<&str> = given.iter().map(|r| r.name.as_str()).collect();
    names.dedup();
    let mut out: Vec<Resource> = detected
        .iter()
        .filter(|r| !names.contains(&r.name.as_str()))
        .cloned()
        .collect();
    out.extend(given.into_vec());
    Resources::from_vec(out)
}

fn total_memory_mb() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn free_disk_mb(path: &Path) -> Option<f64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available() as f64 * stat.fragment_size() as f64 / (1024.0 * 1024.0))
}

/// Parses Mesos `--attributes`: `name:value;name:value`, where a value is a scalar
/// (`2.5`), a range list (`[1-10]`), a set (`{a,b}`) or text.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, String> {
    let mut out = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, raw) = item
            .split_once(':')
            .ok_or_else(|| format!("attribute '{item}' is not of the form name:value"))?;
        let (name, raw) = (name.trim(), raw.trim());
        if name.is_empty() {
            return Err(format!("attribute '{item}' has an empty name"));
        }
        let mut attribute = Attribute {
            name: name.to_owned(),
            ..Default::default()
        };
        if let Ok(number) = raw.parse::<f64>() {
            attribute.set_type(value::Type::Scalar);
            attribute.scalar = Some(value::Scalar { value: number });
        } else if raw.starts_with('[') && raw.ends_with(']') {
            let mut ranges = Vec::new();
            for part in raw[1..raw.len() - 1]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (b, e) = part
                    .split_once('-')
                    .ok_or_else(|| format!("bad range '{part}' in attribute {name}"))?;
                let begin = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad range '{part}' in attribute {name}"))?;
                let end = e
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad range '{part}' in attribute {name}"))?;
                ranges.push(value::Range { begin, end });
            }
            attribute.set_type(value::Type::Ranges);
            attribute.ranges = Some(value::Ranges { range: ranges });
        } else if raw.starts_with('{') && raw.ends_with('}') {
            let item = raw[1..raw.len() - 1]
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            attribute.set_type(value::Type::Set);
            attribute.set = Some(value::Set { item });
        } else {
            attribute.set_type(value::Type::Text);
            attribute.text = Some(value::Text {
                value: raw.to_owned(),
            });
        }
        out.push(attribute);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_resources_have_the_four_names() {
        let dir = tempfile::tempdir().unwrap();
        let r = detect(dir.path());
        assert!(r.scalar("cpus") >= 1.0);
        assert!(r.scalar("mem") > 0.0);
        assert_eq!(r.ranges("ports"), vec![(31000, 32000)]);
    }

    #[test]
    fn flag_overrides_single_names() {
        let dir = tempfile::tempdir().unwrap();
        let r = resources(dir.path(), Some("cpus:3;gpus:1")).unwrap();
        assert_eq!(r.scalar("cpus"), 3.0);
        assert_eq!(r.scalar("gpus"), 1.0);
        assert!(r.scalar("mem") > 0.0);
        assert!(resources(dir.path(), Some("cpus:x")).is_err());
    }

    #[test]
    fn attributes_parse_in_mesos_syntax() {
        let a = parse_attributes("rack:r1;level:2;ids:[1-3];zone:{a,b}").unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].r#type(), value::Type::Text);
        assert_eq!(a[1].scalar, Some(value::Scalar { value: 2.0 }));
        assert_eq!(a[2].ranges.as_ref().unwrap().range[0].end, 3);
        assert_eq!(a[3].set.as_ref().unwrap().item, vec!["a", "b"]);
        assert!(parse_attributes("novalue").is_err());
    }
}
