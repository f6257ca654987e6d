//! Shared helpers for the integration tests (`mod support;` in each test crate).
#![allow(dead_code)]

pub mod cli_env;
pub mod cli_repo;
pub mod cli_run;
pub mod cloud;
pub mod daemon;
pub mod db_servers;
pub mod fixture;
pub mod forge;
pub mod mount;
pub mod repos;
pub mod s3;
pub mod s3_cli;
pub mod s3_fault_proxy;
pub mod schedule;
