import './base.css';
import './login.css';
