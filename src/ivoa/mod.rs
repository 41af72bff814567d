//! Everything IVOA, for pyvo, astroquery, TOPCAT and STILTS:
//!
//! - [`adql`]: ADQL 2.0/2.1 → DataFusion SQL;
//! - [`tap`]: the Table Access Protocol — synchronous queries, UWS async jobs, VOSI;
//! - [`scs`]: Simple Cone Search;
//! - [`obscore`]: the `ivoa.ObsCore` view of the exposures, and [`sia`]: SIA 2.0 over it;
//! - [`tap_schema`]: the `TAP_SCHEMA` tables, built from the served tables;
//! - [`votable`]: VOTable 1.4 encoding (streaming) and error documents;
//! - [`moc`]: MOC 2.0 coverage maps (FITS and JSON) from HEALPix cells;
//! - [`xml`]: the other XML documents (UWS, VOSI), escaped by construction.

pub mod adql;
pub mod moc;
pub mod obscore;
pub mod scs;
pub mod sia;
pub mod tap;
pub mod tap_schema;
pub mod votable;
pub mod xml;
