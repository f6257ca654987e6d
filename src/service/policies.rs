//! Policies in the daemon: loading them from the repository, `ctl/policy` requests,
//! quotas, bindings, and the write-once rules. Every change is written to the repository
//! (`policies/<name>`, `settings/policies`) before the daemon's view changes, so any
//! machine that mounts the repository sees the same policies.
//!
//! An instance is bound to at most one policy. A move writes the new policy first, then
//! the old one without the instance; should a crash leave the instance in both, the
//! binding with the later `bound_ns` (then the smaller policy name) is the one in force.

use std::collections::BTreeMap;

use serde_json::json;

use crate::model::policy::{PolicySettings, SETTINGS_KEY};
use crate::model::retention::{keeps_at_least, retained};
use crate::model::{schedule, Binding, Policy};
use crate::sync::LockExt;

use super::daemon::{Service, State};
use super::definitions::load_policies;
use super::error::ServiceError;
use super::grammar::ControlError;
use super::policy_control::{PolicyRequest, SettingsChange};
use super::requests::Trigger;

fn quota(message: String) -> ControlError {
    ControlError {
        errno: libc::EDQUOT,
        message,
    }
}

fn refused(message: String) -> ControlError {
    ControlError {
        errno: libc::EPERM,
        message,
    }
}

fn io(e: impl std::fmt::Display) -> ControlError {
    ControlError {
        errno: libc::EIO,
        message: format!("repository: {e}"),
    }
}

/// Why write-once forbids forgetting one of `names` of `instance` (whose points are
/// `points`, oldest first), if it does: a scheduled point its policy still retains.
pub fn write_once_refusal(
    settings: &PolicySettings,
    policies: &BTreeMap<String, Policy>,
    instance: &str,
    points: &[crate::catalog::PointRecord],
    names: &[String],
    now_ns: i64,
) -> Option<String> {
    if !settings.write_once {
        return None;
    }
    let policy = policies.get(bindings(policies).get(instance)?)?;
    let manifests: Vec<&crate::model::Manifest> = points.iter().map(|p| &p.manifest).collect();
    let kept = retained(policy.keep, &manifests, now_ns);
    let name = names.iter().find(|n| kept.contains(*n))?;
    Some(format!(
        "write-once: point `{name}` of `{instance}` is kept by policy `{}` ({}) until its retention ends",
        policy.name, policy.keep
    ))
}

/// [`write_once_refusal`] for a caller without a daemon (a forget run directly on a
/// repository): reads the policies from `repo` and the points from `catalog`.
pub fn write_once_refusal_in(
    repo: &crate::repo::Repository,
    catalog: &crate::catalog::Catalog,
    instance: &str,
    names: &[String],
    now_ns: i64,
) -> Result<Option<String>, ServiceError> {
    let (policies, settings) = load_policies(repo)?;
    let points = catalog.points(Some(instance))?;
    let names: Vec<String> = names
        .iter()
        .map(|n| match n.as_str() {
            "latest" => crate::catalog::latest_of(points.iter().cloned())
                .map(|p| p.manifest.name)
                .unwrap_or_default(),
            _ => n.clone(),
        })
        .collect();
    Ok(write_once_refusal(
        &settings, &policies, instance, &points, &names, now_ns,
    ))
}

/// Instance -> the policy it is bound to (see the module comment for duplicates).
pub(super) fn bindings(policies: &BTreeMap<String, Policy>) -> BTreeMap<String, String> {
    let mut best: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for p in policies.values() {
        for b in &p.instances {
            let better = best
                .get(&b.instance)
                .is_none_or(|(t, n)| b.bound_ns > *t || (b.bound_ns == *t && p.name < *n));
            if better {
                best.insert(b.instance.clone(), (b.bound_ns, p.name.clone()));
            }
        }
    }
    best.into_iter().map(|(i, (_, p))| (i, p)).collect()
}

impl Service {
    pub fn policy_names(&self) -> Vec<String> {
        self.lock().policies.keys().cloned().collect()
    }

    pub fn policy(&self, name: &str) -> Option<Policy> {
        self.lock().policies.get(name).cloned()
    }

    pub fn policy_settings(&self) -> PolicySettings {
        self.lock().settings.clone()
    }

    /// The policy an instance is bound to.
    pub fn bound_policy(&self, instance: &str) -> Option<Policy> {
        let st = self.lock();
        let name = bindings(&st.policies).remove(instance)?;
        st.policies.get(&name).cloned()
    }

    /// Instances bound to `policy` (duplicates resolved).
    pub(super) fn bound_instances(&self, st: &State, policy: &str) -> Vec<String> {
        bindings(&st.policies)
            .into_iter()
            .filter(|(_, p)| p == policy)
            .map(|(i, _)| i)
            .collect()
    }

    /// `.cairn/policies/<name>`: the stored policy, its instances and its next run.
    pub fn policy_json(&self, name: &str) -> Option<String> {
        let (p, instances) = {
            let st = self.lock();
            let p = st.policies.get(name)?.clone();
            (p, self.bound_instances(&st, name))
        };
        let mut v = serde_json::to_value(&p).ok()?;
        v["bound"] = json!(instances);
        v["next_run"] = json!(p
            .enabled
            .then(|| schedule::next_slot(&p, self.now_ns()))
            .flatten()
            .map(schedule::utc));
        Some(format!("{}\n", serde_json::to_string_pretty(&v).ok()?))
    }

    /// With write-once on, refuses to delete scheduled points of `instance` that its
    /// policy still retains. The forget path calls this before deleting anything.
    pub fn check_write_once(&self, instance: &str, points: &[String]) -> Result<(), ControlError> {
        let refusal = {
            let st = self.lock();
            write_once_refusal(
                &st.settings,
                &st.policies,
                instance,
                &self.points(instance),
                points,
                self.now_ns(),
            )
        };
        refusal.map_or(Ok(()), |m| Err(refused(m)))
    }

    fn store_policy(&self, p: &Policy) -> Result<(), ControlError> {
        self.repo()
            .replace_sealed(&Policy::object_key(&p.name), p.encode())
            .map_err(io)?;
        let mut st = self.lock();
        st.policies.insert(p.name.clone(), p.clone());
        st.generation += 1;
        Ok(())
    }

    fn existing(&self, name: &str) -> Result<Policy, ControlError> {
        self.policy(name).ok_or_else(|| {
            ControlError::not_found(format!(
                "no policy `{name}`: `cairn policy list` shows the policies"
            ))
        })
    }

    pub(super) fn policy_request(&self, req: PolicyRequest) -> Result<String, ControlError> {
        let _one_at_a_time = self.inner.policy_writes.locked();
        let now = self.now_ns();
        let write_once = self.policy_settings().write_once;
        match req {
            PolicyRequest::Create { name, change } => {
                let (count, max) = {
                    let st = self.lock();
                    if st.policies.contains_key(&name) {
                        return Err(ControlError::exists(format!(
                            "policy `{name}` exists: change it with `update name={name} ...`"
                        )));
                    }
                    (st.policies.len(), st.settings.max_policies)
                };
                if count >= max as usize {
                    return Err(quota(format!(
                        "policy quota reached: the repository has {count} policies (max-policies={max}); delete one, or raise the quota with `settings max-policies=N`"
                    )));
                }
                let p =
                    Policy::create(&name, &change, now).map_err(|e| ControlError::invalid(e.0))?;
                self.store_policy(&p)?;
                Ok(format!("ok policy={name}\n"))
            }
            PolicyRequest::Update { name, change } => {
                let old = self.existing(&name)?;
                let new = old
                    .updated(&change, now)
                    .map_err(|e| ControlError::invalid(e.0))?;
                if write_once && !old.instances.is_empty() && !keeps_at_least(old.keep, new.keep) {
                    return Err(refused(format!(
                        "write-once: policy `{name}` may not keep less than {} while it covers instances",
                        old.keep
                    )));
                }
                self.store_policy(&new)?;
                Ok(format!("ok policy={name}\n"))
            }
            PolicyRequest::Delete { name } => {
                let p = self.existing(&name)?;
                if write_once && !p.instances.is_empty() {
                    return Err(refused(format!(
                        "write-once: policy `{name}` covers instances and may not be deleted"
                    )));
                }
                self.repo()
                    .store()
                    .delete(&Policy::object_key(&name))
                    .map_err(io)?;
                let mut st = self.lock();
                st.policies.remove(&name);
                st.generation += 1;
                Ok(format!("ok deleted policy={name} (its points stay)\n"))
            }
            PolicyRequest::Enable { name } => self.set_enabled(&name, true, now),
            PolicyRequest::Disable { name } => self.set_enabled(&name, false, now),
            PolicyRequest::Bind { name, instance } => self.bind(&name, &instance, now, write_once),
            PolicyRequest::Unbind { instance } => {
                let Some(mut p) = self.bound_policy(&instance) else {
                    return Err(ControlError::not_found(format!(
                        "instance `{instance}` is not bound to a policy"
                    )));
                };
                if write_once {
                    return Err(refused(format!(
                        "write-once: `{instance}` may not leave policy `{}`",
                        p.name
                    )));
                }
                p.instances.retain(|b| b.instance != instance);
                p.updated_ns = now;
                self.store_policy(&p)?;
                self.drop_stale_bindings(&instance, &p.name, now)?;
                Ok(format!(
                    "ok unbound instance={instance} from policy={} (its points stay)\n",
                    p.name
                ))
            }
            PolicyRequest::RunNow { name, instance } => {
                let p = self.existing(&name)?;
                let bound = self.bound_instances(&self.lock(), &name);
                let targets = match instance {
                    Some(i) if bound.contains(&i) => vec![i],
                    Some(i) => {
                        return Err(ControlError::not_found(format!(
                            "instance `{i}` is not bound to policy `{name}`"
                        )))
                    }
                    None if bound.is_empty() => {
                        return Err(ControlError::not_found(format!(
                        "policy `{name}` covers no instance: `bind name={name} instance=..` first"
                    )))
                    }
                    None => bound,
                };
                let mut reply = Vec::new();
                for i in targets {
                    let id = self.start_scheduled(&p, &i, now, now, Trigger::RunNow)?;
                    reply.push(format!("job={id}"));
                }
                Ok(format!("{}\n", reply.join(" ")))
            }
            PolicyRequest::Settings(change) => self.change_settings(change),
        }
    }

    fn set_enabled(&self, name: &str, enabled: bool, now: i64) -> Result<String, ControlError> {
        let mut p = self.existing(name)?;
        let word = if enabled { "enabled" } else { "disabled" };
        if p.enabled == enabled {
            return Ok(format!("ok policy={name} already {word}\n"));
        }
        p.enabled = enabled;
        p.updated_ns = now;
        self.store_policy(&p)?;
        if enabled {
            // Slots that passed while it was disabled are not missed: they never were due.
            for b in &p.instances {
                self.restart_track(name, &b.instance, now);
            }
        }
        Ok(format!("ok policy={name} {word}\n"))
    }

    fn bind(
        &self,
        name: &str,
        instance: &str,
        now: i64,
        write_once: bool,
    ) -> Result<String, ControlError> {
        let mut target = self.existing(name)?;
        let Some(config) = self.instance(instance) else {
            return Err(ControlError::not_found(format!(
                "no instance `{instance}`: add it first with `add name={instance} path=/...` in ctl/instance"
            )));
        };
        if config.is_stdin_only() {
            return Err(ControlError::invalid(format!(
                "instance `{instance}` has no paths and no commands (it is fed by --stdin \
                 only): a scheduled snapshot would have nothing to read; give it a path or a \
                 command (`instance add`) to schedule it"
            )));
        }
        let previous = self.bound_policy(instance);
        if previous.as_ref().is_some_and(|p| p.name == name) {
            return Ok(format!(
                "ok instance={instance} already bound to policy={name}\n"
            ));
        }
        let (count, max) = {
            let st = self.lock();
            (
                self.bound_instances(&st, name).len(),
                st.settings.max_instances_per_policy,
            )
        };
        if count >= max as usize {
            return Err(quota(format!(
                "instance quota reached: policy `{name}` covers {count} instances (max-instances-per-policy={max}); unbind one, or raise the quota with `settings max-instances-per-policy=N`"
            )));
        }
        if let Some(old) = &previous {
            if write_once && !keeps_at_least(old.keep, target.keep) {
                return Err(refused(format!(
                    "write-once: `{instance}` may only move to a policy that keeps at least {} (policy `{}`)",
                    old.keep, old.name
                )));
            }
        }
        target.instances.retain(|b| b.instance != instance);
        target.instances.push(Binding {
            instance: instance.to_string(),
            bound_ns: now,
        });
        target.updated_ns = now;
        target.validate().map_err(|e| ControlError::invalid(e.0))?;
        self.store_policy(&target)?;
        self.restart_track(name, instance, now);
        self.drop_stale_bindings(instance, name, now)?;
        let moved = match previous {
            Some(old) => format!(" (moved from policy={})", old.name),
            None => String::new(),
        };
        Ok(format!(
            "ok bound instance={instance} to policy={name}{moved}\n"
        ))
    }

    /// Removes `instance` from every policy but `keep` that still lists it (the one it
    /// moved from, and any a crash left it in).
    fn drop_stale_bindings(
        &self,
        instance: &str,
        keep: &str,
        now: i64,
    ) -> Result<(), ControlError> {
        let stale: Vec<Policy> = self
            .lock()
            .policies
            .values()
            .filter(|p| p.name != keep && p.binding(instance).is_some())
            .cloned()
            .collect();
        for mut p in stale {
            p.instances.retain(|b| b.instance != instance);
            p.updated_ns = now;
            self.store_policy(&p)?;
        }
        Ok(())
    }

    fn change_settings(&self, change: SettingsChange) -> Result<String, ControlError> {
        let mut s = self.policy_settings();
        if change.write_once == Some(false) && s.write_once {
            return Err(refused(
                "write-once is on for this repository and cannot be turned off".into(),
            ));
        }
        let before = s.clone();
        if let Some(n) = change.max_policies {
            s.max_policies = n;
        }
        if let Some(n) = change.max_instances_per_policy {
            s.max_instances_per_policy = n;
        }
        if let Some(w) = change.write_once {
            s.write_once = w;
        }
        if s != before {
            let json = serde_json::to_vec(&s).expect("settings serialize");
            self.repo().replace_sealed(SETTINGS_KEY, json).map_err(io)?;
            self.lock().settings = s.clone();
        }
        Ok(format!(
            "ok max-policies={} max-instances-per-policy={} write-once={}\n",
            s.max_policies, s.max_instances_per_policy, s.write_once
        ))
    }
}
