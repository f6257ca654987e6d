//! The parser of `ctl/copy`: `to=REPO [instance=X [point=P]...] [to-password-file=/abs]
//! [verify=true|false] [read-data=true|false]`, the mounted repository's points into `to`.

use crate::store::Location;

use super::grammar::{
    absolute, boolean, instance_name, no_verb, parse_words, point_ref, ControlError, Fields, Result,
};
use super::requests::CopyControl;

pub fn parse_copy(text: &str) -> Result<CopyControl> {
    let words = parse_words(text)?;
    no_verb(&words, "copy")?;
    let mut f = Fields::new(words);
    let to = f.required("to")?;
    Location::parse(&to).map_err(|e| ControlError::invalid(format!("`to`: {e}")))?;
    let instance = f.optional("instance")?.map(instance_name).transpose()?;
    let points = f
        .all("point")
        .into_iter()
        .map(point_ref)
        .collect::<Result<Vec<_>>>()?;
    if !points.is_empty() && instance.is_none() {
        return Err(ControlError::invalid("`point=` needs `instance=`"));
    }
    let to_password_file = f
        .optional("to-password-file")?
        .map(|p| absolute("to-password-file", p))
        .transpose()?;
    let verify = match f.optional("verify")? {
        None => true,
        some => boolean("verify", some)?,
    };
    let read_data = boolean("read-data", f.optional("read-data")?)?;
    if read_data && !verify {
        return Err(ControlError::invalid(
            "`read-data=true` needs `verify=true`",
        ));
    }
    f.finish("to, instance, point, to-password-file, verify, read-data")?;
    Ok(CopyControl {
        to,
        instance,
        points,
        to_password_file,
        verify,
        read_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let c = parse_copy(
            "to=/srv/b instance=www point=latest point=2026-11-22T031522Z to-password-file=/pw",
        )
        .unwrap();
        assert_eq!(c.to, "/srv/b");
        assert_eq!(c.points, ["latest", "2026-11-22T031522Z"]);
        assert!(c.verify && !c.read_data);
        assert_eq!(c.to_password_file.as_deref(), Some("/pw".as_ref()));
        assert!(parse_copy("instance=www").is_err());
        assert!(parse_copy("to=/b point=latest").is_err());
        assert!(parse_copy("to=/b to-password-file=rel").is_err());
        assert!(parse_copy("to=/b verify=false read-data=true").is_err());
        assert!(parse_copy("to=/b colour=red").is_err());
        assert!(!parse_copy("to=/b verify=false").unwrap().verify);
    }
}
